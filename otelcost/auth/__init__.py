"""Who may send spans and call the API: keys, roles, tenant binding, TLS (docs/security.md)."""
