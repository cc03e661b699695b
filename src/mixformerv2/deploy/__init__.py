"""Deployment: ONNX export of the two graphs (template encoder, tracking step) and the onnxruntime runtime."""
