class HerstelbusError(Exception):
    """An operational failure with a message meant for the person at the terminal.

    Its text never holds personal data: only event ids, pseudonyms, topics, ports and paths.
    """


# A worker that ends itself rather than lose or silently hold back a record (EX_SOFTWARE): its
# supervisor restarts it, and it reads on from the committed offsets.
EXIT_RESTART = 70
