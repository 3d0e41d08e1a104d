"""Int8 deployment: each engine's own quantizer (ONNX Runtime's ``quantize_static``, NNCF for
OpenVINO) run on archdsl's ONNX export, with its settings stated and chosen for the
instruction set, and the result measured against the float model (docs/int8.md)."""
