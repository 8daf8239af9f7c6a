"""One delivery, recorded: claimed in the ledger before it is sent and its result recorded
after, so that a retry sends only what did not go out and nothing goes out twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engine.errors import LeaseLost, MarketopsError, TransientError
from engine.masking import mask
from engine.runs.ledger import Ledger, Run
from runners.delivery.send import DeliveryError


@dataclass(frozen=True)
class Delivered:
    """What became of one recipient: `status` as the run's outputs show it; `transient` when
    another attempt will try again; `refused` when the recipient refused for good; `tried`
    when this call sent (or tried to); `cause` why a transient failure failed."""

    status: str
    transient: bool = False
    refused: bool = False
    tried: bool = True
    cause: str | None = None

    @property
    def outcome(self) -> str:
        """sent, retrying or failed (the deliveries metric's label)."""
        return "sent" if self.status == "sent" else "retrying" if self.transient else "failed"


def deliver_once(ledger: Ledger, run: Run, recipient: str,
                 send: Callable[[datetime | None], None]) -> Delivered:
    """Send to `recipient` unless this run sent it already (or it refused for good); `send`
    gets the time the delivery was first queued (the mail's Date). LeaseLost propagates: the
    run is another attempt's now, and so are its deliveries."""
    claim = ledger.begin_delivery(run.id, recipient, run.attempt)
    if not claim:
        return Delivered(claim.reason, refused=claim.reason.startswith("refused"), tried=False)
    try:
        send(claim.queued_at)
    except LeaseLost:
        raise
    except TransientError as exc:
        ledger.finish_delivery(run.id, recipient, str(exc), attempt=run.attempt)
        cause = mask(str(exc))
        return Delivered(f"failed, will retry: {cause}", transient=True, cause=cause)
    except MarketopsError as exc:
        # A refusal for good (5xx, a 4xx webhook answer) is final; a settings mistake may be
        # fixed before the run's next attempt.
        permanent = isinstance(exc, DeliveryError)
        ledger.finish_delivery(run.id, recipient, str(exc), attempt=run.attempt,
                               permanent=permanent)
        return Delivered(f"failed: {mask(str(exc))}", refused=permanent)
    except Exception as exc:
        ledger.finish_delivery(run.id, recipient, f"{type(exc).__name__}: {exc}",
                               attempt=run.attempt)
        raise
    ledger.finish_delivery(run.id, recipient, None, attempt=run.attempt)
    return Delivered("sent")
