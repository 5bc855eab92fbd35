"""What an exchange produces: one result per request of the batch, and the answer's message."""

from dataclasses import dataclass, field

SUCCEEDED, PENDING, REJECTED = "succ", "pdng", "rjct"


@dataclass
class ItemResult:
    reference_id: str
    status: str
    reason_code: str = ""
    reason_message: str = ""
    total_count: int | None = None
    returned_count: int | None = None
    page_number: int | None = None
    page_size: int | None = None
    enrolment_id: int | None = None
    referral_id: int | None = None
    # The item as the answer's message carries it.
    answer: dict = field(default_factory=dict)


@dataclass
class Outcome:
    message: dict | None
    items: list[ItemResult]
    status: str = SUCCEEDED
    reason_code: str = ""
    reason_message: str = ""

    @property
    def record_count(self) -> int:
        return sum(item.returned_count or 0 for item in self.items)

    @property
    def completed_count(self) -> int:
        # The specification counts a request completed when it ended, in success or in a functional error.
        return sum(1 for item in self.items if item.status in (SUCCEEDED, REJECTED))
