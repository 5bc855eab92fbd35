"""Password rules beyond Django's own (listed in AUTH_PASSWORD_VALIDATORS, spf/settings/base.py)."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from registry.countries import current_country

# Words everyone at a district office knows, so the first a guesser tries: the
# system's names, the office's, the demo's. Compared letters and digits only, lower case.
WORKPLACE_WORDS = ("password", "singlewindow", "socialprotection", "onestopshop")


def _letters_and_digits(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


class WorkplaceWordsValidator:
    """Refuses a password that contains the user name, the country's name, the demo password or a word of the office.

    Django's UserAttributeSimilarityValidator compares the whole password with the
    user name, so "frontdesk_samfya" with a long enough tail passes it; this one
    refuses the user name anywhere inside. Short user names (under four
    characters) are not looked for: they would turn up by chance.
    """

    MINIMUM_NAME_LENGTH = 4

    def validate(self, password: str, user=None) -> None:
        flat = _letters_and_digits(password)
        username = _letters_and_digits(getattr(user, "username", "") or "")
        if len(username) >= self.MINIMUM_NAME_LENGTH and username in flat:
            raise ValidationError("The password must not contain the user name.", code="password_contains_username")
        words = [
            *WORKPLACE_WORDS,
            _letters_and_digits(current_country().name),
            _letters_and_digits(settings.DEMO_PASSWORD),
        ]
        for word in words:
            if len(word) >= self.MINIMUM_NAME_LENGTH and word in flat:
                raise ValidationError(
                    "The password must not contain a word anybody at the office would guess first "
                    "(the system's or the country's name, “password”, the demo password).",
                    code="password_workplace_word",
                )

    def get_help_text(self) -> str:
        return "Your password must not contain your user name, the country's or the system's name, or “password”."
