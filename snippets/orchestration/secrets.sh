# From snippets/orchestration: the Secret of each environment, in the file its overlay's
# secretGenerator reads. Random here; in real life, from your password manager or vault.
umask 077  # readable by you alone
python3 -c 'import secrets; print("DATABASE_PASSWORD=" + secrets.token_urlsafe(24))' > overlays/staging/secrets.env
python3 -c 'import secrets; print("DATABASE_PASSWORD=" + secrets.token_urlsafe(24))' > overlays/production/secrets.env
