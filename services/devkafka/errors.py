from herstelbus.errors import HerstelbusError


class DevKafkaError(HerstelbusError):
    """Something stops the local broker from starting or answering; the message says what to do."""
