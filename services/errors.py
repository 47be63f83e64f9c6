class HerstelbusError(Exception):
    """An operational failure with a message meant for the person at the terminal.

    Its text never holds personal data: only event ids, pseudonyms, topics, ports and paths.
    """
