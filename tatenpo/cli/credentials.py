"""`flask rotate-credential-key [--retire-old]`: bring in a new credential key and encrypt every store's mall
secrets with it, keeping the older keys readable until `--retire-old` drops them."""
from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask import current_app

from tatenpo.cli.output import emit, fail
from tatenpo.platform import credentials, instance
from tatenpo.platform.extensions import db


def _check_readable(keys: list[str]) -> None:
    """Refuse, changing nothing, when some store's secret cannot be read with any key we have."""
    try:
        credentials.reencrypt_all(keys)
    except credentials.CredentialKeyError as exc:
        db.session.rollback()
        fail(f"store {exc.store_id}: its credentials cannot be decrypted with any credential key; enter them again "
             "in the store's settings, then run this again. Nothing was changed.")
    db.session.rollback()


def register(app) -> None:
    @app.cli.command("rotate-credential-key")
    @click.option("--retire-old", is_flag=True,
                  help="Encrypt every secret with the newest key, then drop the older keys.")
    @click.option("--json", "as_json", is_flag=True)
    def rotate(retire_old: bool, as_json: bool) -> None:
        """Add a new credential key (newest first in instance/credential.key) and re-encrypt every store's
        secrets with it; the older keys stay readable until --retire-old."""
        in_file = bool(current_app.config.get("CREDENTIAL_KEY_FILE"))
        keys = credentials.keys()
        _check_readable(keys)
        if retire_old:
            count = credentials.reencrypt_all(keys)
            db.session.commit()
            retired = len(keys) - 1
            if in_file:
                instance.write_credential_keys(current_app.instance_path, keys[:1])
                text = f"Re-encrypted {count} stores with the newest key; retired {retired} older keys."
            else:
                text = (f"Re-encrypted {count} stores with the newest key. Nothing uses the older keys now: set "
                        "CREDENTIAL_KEY to its first key alone and restart every process.")
            emit({"stores": count, "retired": retired if in_file else 0, "keys": 1 if in_file else len(keys)},
                 as_json, text=text)
            return
        new_key = Fernet.generate_key().decode()
        if not in_file:
            # The keys live in the environment, which this command cannot change: say what to set.
            fail("CREDENTIAL_KEY sets the credential keys, so they cannot be rotated here. Set "
                 f"CREDENTIAL_KEY={new_key},{','.join(keys)} for every process, restart them, then run "
                 "`flask --app app rotate-credential-key --retire-old`. Nothing was changed.")
        # The file first: a process that reads a secret encrypted with the new key must already know it.
        instance.write_credential_keys(current_app.instance_path, [new_key, *keys])
        count = credentials.reencrypt_all([new_key, *keys])
        db.session.commit()
        emit({"stores": count, "keys": len(keys) + 1}, as_json,
             text=f"New credential key added; re-encrypted {count} stores. The {len(keys)} older keys stay "
                  "readable until `rotate-credential-key --retire-old`.")
