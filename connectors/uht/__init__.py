"""What UHT runs: the publisher, the outbox relay, and synthetic test data in UHT's own format."""
