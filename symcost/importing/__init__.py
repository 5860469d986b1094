"""Importers that write symcost architecture files from models built elsewhere (ONNX files, torch modules)."""
