"""Real CalDAV servers (Radicale, Xandikos) started by the test suite: see fixtures below."""
