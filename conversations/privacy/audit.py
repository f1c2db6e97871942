"""The audit trail of LGPD operations: who, when, how many rows and files; no personal data."""

from conversations.models import PrivacyAudit


def record(action: str, actor: str, counts: dict, customer_id: int | None = None) -> PrivacyAudit:
    clean = {str(name): int(value) for name, value in counts.items()}
    return PrivacyAudit.objects.create(
        action=action, actor=actor[:150], customer_id=customer_id, counts=clean
    )
