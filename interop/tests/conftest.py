import datetime

import pytest

from registry.models import Relationship

from .makers import define_attributes, partner, person, register, token_for


@pytest.fixture
def attributes(db):
    define_attributes()


@pytest.fixture
def mwansa(attributes, samfya_officer, samfya_village):
    """Samfya: a mother (NRC 111111/11/1), her grown son and her daughter; PMT 3.5."""
    return register(
        samfya_officer,
        samfya_village,
        [
            person("Mary", "Mwansa", "F", datetime.date(1970, 3, 4), national_id="111111/11/1", phone="0977111111"),
            person(
                "John",
                "Mwansa",
                "M",
                datetime.date(2003, 6, 1),
                relationship=Relationship.CHILD,
                national_id="111112/11/1",
            ),
            person("Bupe", "Mwansa", "F", datetime.date(2015, 1, 1), relationship=Relationship.CHILD),
        ],
        pmt="3.5",
        address="Plot 12, near the clinic",
    )


@pytest.fixture
def phiri(attributes, samfya_officer, samfya_village):
    """Samfya: a widow (NRC 222222/22/2) and her grandson; PMT 2.0."""
    return register(
        samfya_officer,
        samfya_village,
        [
            person(
                "Grace",
                "Phiri",
                "F",
                datetime.date(1958, 8, 9),
                national_id="222222/22/2",
                attributes={"marital_status": "W"},
                disability_walking=3,
            ),
            person("Moses", "Phiri", "M", datetime.date(2012, 2, 2), relationship=Relationship.GRANDCHILD),
        ],
        pmt="2.0",
    )


@pytest.fixture
def banda(attributes, samfya_officer, samfya_village):
    """Samfya: a man living alone (NRC 333333/33/3); PMT 7.25."""
    return register(
        samfya_officer,
        samfya_village,
        [person("Peter", "Banda", "M", datetime.date(1950, 5, 5), national_id="333333/33/3")],
        pmt="7.25",
    )


@pytest.fixture
def tembo(attributes, lunga_officer, lunga_village):
    """Lunga: a poor widow (NRC 444444/44/4): poorer than anyone in Samfya."""
    return register(
        lunga_officer,
        lunga_village,
        [
            person(
                "Agnes",
                "Tembo",
                "F",
                datetime.date(1961, 1, 1),
                national_id="444444/44/4",
                attributes={"marital_status": "W"},
            )
        ],
        pmt="1.0",
    )


@pytest.fixture
def registry(mwansa, phiri, banda, tembo):
    return {"mwansa": mwansa, "phiri": phiri, "banda": banda, "tembo": tembo}


@pytest.fixture
def nsr(ministry_user, samfya):
    """The national social registry's system, allowed Samfya only."""
    return partner(ministry_user, [samfya], code="nsr.gov.zm", name="National Social Registry")


@pytest.fixture
def nsr_token(nsr, ministry_user):
    return token_for(nsr, ministry_user)


# --- programmes, enrolments and the systems that read and update them -------------------------


@pytest.fixture
def mcdss(db):
    from payments.tests.makers import make_agency

    return make_agency("MCDSS")


@pytest.fixture
def sct(mcdss, samfya, lunga, ministry_user):
    """The Social Cash Transfer of MCDSS, in Samfya and Lunga, enrolled directly."""
    from payments.tests.makers import make_cash_programme

    return make_cash_programme(code="SCT", agency=mcdss, districts=[samfya, lunga], ministry_user=ministry_user)


@pytest.fixture
def hgsf(samfya, ministry_user):
    """Home Grown School Feeding of another ministry, in Samfya."""
    from payments.tests.makers import make_agency, make_cash_programme

    return make_cash_programme(code="HGSF", agency=make_agency("MOE"), districts=[samfya], ministry_user=ministry_user)


@pytest.fixture
def maker(mcdss, samfya, lunga):
    from payments.tests.makers import make_officer

    return make_officer(mcdss, [samfya, lunga], name="maker")


@pytest.fixture
def checker(mcdss, samfya, lunga):
    from payments.tests.makers import make_officer

    return make_officer(mcdss, [samfya, lunga], name="checker")


@pytest.fixture
def mwansa_in_sct(mwansa, sct, maker, checker):
    from payments.tests.makers import enrol_active

    return enrol_active(household=mwansa, programme=sct, maker=maker, checker=checker)


@pytest.fixture
def tembo_in_sct(tembo, sct, maker, checker):
    from payments.tests.makers import enrol_active

    return enrol_active(household=tembo, programme=sct, maker=maker, checker=checker)


@pytest.fixture
def mcdss_system(ministry_user, samfya, mcdss, sct):
    """MCDSS's own MIS, allowed Samfya: its enrolment updates become enrolments of SCT."""
    return partner(
        ministry_user,
        [samfya],
        code="mcdss-mis",
        name="MCDSS beneficiary MIS",
        agency=mcdss,
        programmes=[sct],
        can_search_registry=False,
        can_read_enrolments=True,
        can_update_enrolments=True,
        pay_point="Samfya boma",
    )


@pytest.fixture
def mcdss_token(mcdss_system, ministry_user):
    return token_for(mcdss_system, ministry_user)


@pytest.fixture
def national_ibr(ministry_user, samfya, sct, hgsf):
    """The national Integrated Beneficiary Registry, allowed Samfya: its updates become referrals."""
    return partner(
        ministry_user,
        [samfya],
        code="ibr.gov.zm",
        name="National Integrated Beneficiary Registry",
        programmes=[sct, hgsf],
        can_search_registry=False,
        can_read_enrolments=True,
        can_update_enrolments=True,
    )


@pytest.fixture
def ibr_token(national_ibr, ministry_user):
    return token_for(national_ibr, ministry_user)
