"""Local fakes of the Tencent services recsched calls, for tests, `recsched demo` and
`recsched fake-provider`: the LVB API (lvb.py) and the web-page recording function behind API
Gateway (web.py and its parts). They are test doubles, apart from the daemon: they import none
of its modules but the providers' public facts, and the web fake checks signatures with its own
implementation of the gateway's rules (web_auth.py), not with the client's signing code.
"""
