"""How XLA compiles a model: HLO before and after optimisation, mapped back to layers.

- `xla`: compiling the forward pass or a train step (`insight.compile_model`), step times;
- `compilation`: the result, `XlaCompilation`, read back per layer;
- `hlo`: parsing HLO text (computations, instructions, fusions, opcode counts).
"""

__all__: list[str] = []  # the public names are `insight`'s; import the modules
