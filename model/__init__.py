"""Sentiment model: ONNX export, int8 quantisation, fast batched scoring, training, eval."""
