"""Start-up accounts: the admin named by ``MEMDB_ADMIN_EMAIL`` / ``MEMDB_ADMIN_PASSWORD``."""

from __future__ import annotations

import logging
import uuid

from server.security.passwords import hash_password
from server.settings import Settings
from server.tables import USER_QUERIES, USERS
from store import Conflict, StoreClient

logger = logging.getLogger("memdb.accounts")


async def ensure_admin(store: StoreClient, settings: Settings) -> None:
    """Create the configured admin, or make the existing account with that email an admin with that password."""
    if settings.admin_email is None or settings.admin_password is None:
        return
    password_hash = await hash_password(settings.admin_password.get_secret_value(), settings.bcrypt_rounds)
    values = {
        "id": uuid.uuid4(),
        "email": settings.admin_email,
        "full_name": "Administrator",
        "role": "admin",
        "password_hash": password_hash,
    }
    # Nodes sharing one store may start together: whoever loses the race to create the admin updates it.
    for _ in range(2):
        found = await store.find(USERS.name, USER_QUERIES.parse([("email", settings.admin_email)], None, per_page=1))
        if found.items:
            changes = {"role": "admin", "password_hash": password_hash}
            await store.update(USERS.name, uuid.UUID(found.items[0]["id"]), changes)
            logger.info("start-up admin %s already existed; role and password set", settings.admin_email)
            return
        try:
            await store.insert(USERS.name, values)
        except Conflict:
            continue
        logger.info("created start-up admin %s", settings.admin_email)
        return
