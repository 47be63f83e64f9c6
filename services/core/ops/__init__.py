"""The pure core of the ops tooling (issue 7): no Kafka, HTTP or database imports."""
