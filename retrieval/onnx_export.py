"""Keras serving model → ONNX file, through a frozen TensorFlow graph and tf2onnx.

Freezing first turns every variable into a constant: converted directly (tf2onnx, or Keras's
own `export(format="onnx")`), EfficientNet's Normalization mean and variance stay behind as
extra graph inputs and the file cannot run. Needs TensorFlow; the file it writes does not.
"""

from pathlib import Path

from retrieval.errors import RuntimeModelError

OPSET = 17


def write_onnx(serving: "object", input_size: int, path: Path) -> None:
    """Write `serving` ((N, S, S, 3) float32 → (N, D)) to `path` with a dynamic batch."""
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32, name="images")
    forward = tf.function(lambda images: serving(images, training=False), input_signature=[spec])
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    graph = frozen.graph.as_graph_def()
    inputs = [tensor.name for tensor in frozen.inputs]
    outputs = [tensor.name for tensor in frozen.outputs]
    del frozen  # the graph def holds the weights now; keep one copy in memory
    with tf.device("/cpu:0"):
        model, _ = tf2onnx.convert.from_graph_def(
            graph, input_names=inputs, output_names=outputs, opset=OPSET, output_path=str(path)
        )
    extra = [tensor.name for tensor in model.graph.input][1:]
    if extra:  # a variable left unfrozen would have to be fed at every call
        raise RuntimeModelError(f"the ONNX graph has inputs besides the images: {extra}")
