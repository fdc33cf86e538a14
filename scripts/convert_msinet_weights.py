"""Convert MSI-Net's released TensorFlow weights to a PyTorch state dict for ``hsi_core.models.msinet``.

Steps for a user:

1. Get the authors' SALICON model from https://github.com/alexanderkroner/saliency: running
   ``python main.py test -d salicon -p <images>`` there downloads ``weights/model_salicon_gpu.pb``
   (a frozen graph; ``model_salicon_cpu.pb`` with ``"device": "cpu"`` in their config.py; both hold
   the same variables); a training run of theirs writes ``model_salicon_*.ckpt.*`` checkpoints
   (their Adam slots and step counters are skipped here).
2. In an environment with TensorFlow (any 1.x or 2.x; it is not a dependency of this project):
   ``python scripts/convert_msinet_weights.py weights/model_salicon_cpu.pb msinet_salicon.pt``
   (a checkpoint prefix such as ``model_salicon_cpu.ckpt`` works too; so does an ``.npz`` of
   ``{tf variable name: array}`` written anywhere else).
3. Load it: ``load_msinet_weights(MSINet(), "msinet_salicon.pt")``.

The variables ``conv{b}/conv{b}_{i}/{kernel,bias}``, ``aspp/conv1_{1..5}/...``, ``aspp/conv2/...`` and
``decoder/conv{1..4}/...`` are mapped by ``hsi_core.models.msinet.tf_name_to_torch``; kernels go
from TensorFlow's HWIO to PyTorch's OIHW. Every weight must be found, with the right shape.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def read_frozen_graph(path: Path) -> dict[str, np.ndarray]:
    """Constants of a frozen GraphDef (``.pb``), by node name."""
    import tensorflow as tf  # only needed for the TensorFlow formats

    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(path.read_bytes())
    return {node.name: tf.make_ndarray(node.attr["value"].tensor) for node in graph.node if node.op == "Const"}


def read_checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    if path.suffix == ".pb":
        return read_frozen_graph(path)
    if Path(str(path) + ".index").is_file() or path.suffix == ".index":
        return read_checkpoint(path.with_suffix("") if path.suffix == ".index" else path)
    raise ValueError(f"{path}: expected a frozen graph (.pb), a checkpoint prefix or an .npz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="model_salicon_cpu.pb, a checkpoint prefix, or an .npz")
    parser.add_argument("output", type=Path, help="where to write the PyTorch state dict (.pt)")
    args = parser.parse_args(argv)
    if not args.source.exists() and not Path(str(args.source) + ".index").is_file():
        raise FileNotFoundError(f"{args.source} not found: see this script's docstring for where to get MSI-Net's weights")

    from hsi_core.io import atomic_save_torch
    from hsi_core.models.msinet import state_dict_from_tf

    state = state_dict_from_tf(read_arrays(args.source))
    atomic_save_torch(state, args.output)
    print(f"wrote {len(state)} tensors ({sum(v.numel() for v in state.values()) / 1e6:.2f} M parameters) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
