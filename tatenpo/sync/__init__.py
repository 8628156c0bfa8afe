"""在庫同期: the stock sync engine.

    push.py      claim a store's due schedule entries with a lease, push them in the mall's batches, record
                 one SyncAttempt per entry and one SyncRun per push, close entries whose version did not move
    readback.py  step 8: read the pushed quantities back (反映済み / 未反映), and the hourly drift check
    queueing.py  when a store's push runs: 即時同期 after a commit, 今すぐ同期, the sweep; one push per store
    runner.py    one push under the store's lock, as the worker and the shell run it
    listing_state.py  where each listing stands with its mall, for the badges and filters
    status.py    what the screens and the shell show: history rows, the top page's summary, counts

The schedule (SyncEntry) lives in the database, so a killed worker or a lost Redis delays a push, never
drops it; Redis only says *when* to look.
"""

