"""The assertion every bad-input test makes about an insight error."""


def assert_error(excinfo, error_type, *fragments):
    """The exact error type, each fragment in the message, and the `Received:` part."""
    err = excinfo.value
    assert type(err) is error_type, f"{type(err).__name__}: {err}"
    text = str(err)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "Received:" in text, text
    assert "\n" not in text, "the CLI prints errors on one line"
    return err
