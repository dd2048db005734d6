"""``replywatch demo``: the whole product against the fake platforms."""
