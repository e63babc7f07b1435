"""The simulator producer: replays TweetEval into Kafka like a real firehose."""
