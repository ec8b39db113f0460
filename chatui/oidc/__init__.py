"""Single sign-on through an OpenID Connect provider, configured as chat-ui configures it.

`client` (the provider, through Authlib: discovery, PKCE, state, nonce and the ID token's
checks), `policy` (who may log in and who is an admin: pure functions of the claims),
`accounts` (the user an identity logs in as, keyed by issuer + `sub`), `redirects` (where a
login may return to), `views` (start, callback, logout), `middleware` (AUTOMATIC_LOGIN) and
`backend` (the session's authentication backend). Settings: `config.openid`.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`).
"""
