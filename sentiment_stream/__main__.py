from sentiment_stream.cli import main

main()
