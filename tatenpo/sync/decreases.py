"""説明のない減少: a mall's count fell below what Tatenpo expects and no order explains it — most often a sale
whose order mail is late or lost. A push never overwrites it (tatenpo.sync.push holds the listing first); the
shop then chooses, per listing: adopt it as a sale (在庫数 falls by the difference) or overwrite the mall
with Tatenpo's count. A store set to 説明のない減少は販売として扱う adopts at once. The caller commits."""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from tatenpo.models import Listing, SyncEntry, User, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory


class DecreaseError(ValueError):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def flagged(limit: int = 50) -> list[Listing]:
    """The listings waiting for the shop's choice, newest first (the top page)."""
    return list(db.session.scalars(
        select(Listing).where(Listing.unexplained_decrease.is_not(None)).order_by(Listing.updated_at.desc())
        .limit(limit)))


def adopt(listing_id: int, *, shown: Optional[int] = None, user: Optional[User] = None) -> Optional[int]:
    """Book the decrease as a sale of the listing's product; returns the units booked. `shown` is what the
    mall showed (the push passes it); without it the flagged difference is used."""
    listing = _listing(listing_id)
    decrease = listing.unexplained_decrease if shown is None else (listing.mall_expected or 0) - shown
    if not decrease or decrease <= 0:
        raise DecreaseError(_l("There is no unexplained decrease on this listing."))
    if listing.product_id is not None:  # never below 0; a set's sale takes its parts
        inventory.book_mall_sale(listing.product_id, decrease, user=user,
                                 note=f"{listing.code}: {listing.mall_expected} → {listing.mall_expected - decrease}")
    listing.mall_expected = (listing.mall_expected or 0) - decrease
    _clear(listing)
    return decrease


def overwrite(listing_id: int, user: Optional[User] = None) -> None:
    """Push Tatenpo's count over the mall's, as it is (the shop knows the decrease was not a sale)."""
    listing = _listing(listing_id)
    if listing.unexplained_decrease is None:
        raise DecreaseError(_l("There is no unexplained decrease on this listing."))
    listing.mall_expected = None  # nothing to compare against: the next push goes out as it is
    _clear(listing)


def _listing(listing_id: int) -> Listing:
    listing = db.session.get(Listing, listing_id)
    if listing is None:
        raise DecreaseError(_l("The listing no longer exists."))
    return listing


def _clear(listing: Listing) -> None:
    listing.unexplained_decrease = None
    db.session.execute(
        update(SyncEntry).where(SyncEntry.listing_id == listing.id)
        .values(held_since=None, due_at=utcnow(), last_error=None).execution_options(synchronize_session=False)
    )
    db.session.info.setdefault(inventory.STORES_CHANGED, set()).add(listing.store_id)
