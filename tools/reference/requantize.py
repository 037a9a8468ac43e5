"""Requantises a GGUF file with llama.cpp's own quantiser (through llama-cpp-python), e.g. SmolLM2's Q4_1 to Q8_0,
for `./xllm bench llm` on a second quantisation when no registry carries one. Requantising keeps Q4_1's rounding
(Q8_0 of Q4_1 values), so it measures speed and memory, not Q8_0's accuracy.

Usage: python tools/reference/requantize.py IN.gguf OUT.gguf --type q8_0 [--threads 2]
"""
import argparse
import ctypes
import os
import sys

import llama_cpp

TYPES = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
         "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--type", choices=sorted(TYPES), default="q8_0")
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = TYPES[arguments.type]
    params.allow_requantize = True
    params.nthread = arguments.threads
    partial = arguments.output + ".partial"
    status = llama_cpp.llama_model_quantize(arguments.input.encode(), partial.encode(), ctypes.byref(params))
    if status != 0:
        if os.path.exists(partial):
            os.remove(partial)
        sys.exit(f"requantize: llama_model_quantize returned {status} for {arguments.input}")
    os.replace(partial, arguments.output)
    print(arguments.output)


if __name__ == "__main__":
    main()
