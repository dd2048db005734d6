"""One module per ``replywatch`` command: its options (``register``) and its body."""
