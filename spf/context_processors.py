from registry.countries import current_country


def country(request):
    return {"country": current_country()}
