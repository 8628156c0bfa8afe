"""The machinery the shop never sees: configuration, the instance folder, the database and Redis connections,
logs, languages, outgoing mail, credential encryption, login, health, and the launcher of `make run`."""
