"""Untrusted text made safe to print: control characters escaped, so a name or a platform's
message cannot move the cursor, recolour the terminal or fake a line of output."""
from core.text import printable, printable_lines


def test_printable_text_is_left_as_it_is():
    assert printable("worker rd-worker-1: ünïcode ✓") == "worker rd-worker-1: ünïcode ✓"
    assert printable_lines("two\nlines") == "two\nlines"


def test_escape_sequences_and_carriage_returns_are_shown_not_obeyed():
    assert printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert printable("ok\rFAKED") == "ok\\x0dFAKED"
    assert printable("bell\x07 del\x7f c1\x9b") == "bell\\x07 del\\x7f c1\\x9b"


def test_one_line_text_cannot_add_a_line_but_our_own_messages_keep_theirs():
    assert printable("name\nPASS everything") == "name\\x0aPASS everything"
    assert printable_lines("line one\n\x1b[2Kline two\ttab") == "line one\n\\x1b[2Kline two\\x09tab"


def test_anything_is_printed_as_its_text():
    assert printable(42) == "42"
    assert printable_lines(ValueError("bad\x00byte")) == "bad\\x00byte"
