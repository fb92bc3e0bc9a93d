"""Several trained PMSP networks as one model: their maps averaged, each member seeing its own view.

Averaging the probability maps of networks trained apart (other initialisation,
other output stride) corrects part of each one's mistakes; flipping the input
(test-time augmentation) does the same more weakly and costs a second forward
pass. An ensemble here gets both for one pass per member: each member sees
either the image (``"image"``) or its horizontal mirror (``"mirror"``, its map
mirrored back before averaging). The result is an ordinary Keras model with the
members' inputs (``rgb``, ``ela``) and output (``probability``), so everything
that runs one network (``localize``, ``evaluate``, :func:`fold_batch_norm`)
runs an ensemble unchanged. The members are nested models named after their
role; ``model.get_layer(name)`` gives one back. Explained in 05_evaluation.
"""

from __future__ import annotations

import keras

__all__ = ["VIEWS", "Mirror", "build_ensemble", "ensemble_members"]

VIEWS = ("image", "mirror")


@keras.saving.register_keras_serializable(package="pmsp")
class Mirror(keras.layers.Layer):
    """Flips a (B, H, W, C) tensor left to right: the mirror view, and the way back for its map."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape


def build_ensemble(members: dict[str, tuple[keras.Model, str]], *, name: str = "pmsp_ensemble") -> keras.Model:
    """One model averaging the maps of ``members``: ``{role: (network, view)}``, view ``"image"`` or ``"mirror"``.

    The networks must take the same inputs (names and shapes); each is renamed to its role.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}.")
    networks = [network for network, _ in members.values()]
    shapes = [{tensor.name: tuple(tensor.shape) for tensor in network.inputs} for network in networks]
    if any(shape != shapes[0] for shape in shapes):
        raise ValueError(f"the members take different inputs ({shapes}); build them at one input size with the same streams.")
    inputs = {input_name: keras.Input(shape[1:], name=input_name) for input_name, shape in shapes[0].items()}
    mirrored, maps = None, []
    for role, (network, view) in members.items():
        if view not in VIEWS:
            raise ValueError(f"member {role!r}: view must be one of {VIEWS}, got {view!r}.")
        network.name = role
        if view == "image":
            maps.append(network(inputs))
            continue
        if mirrored is None:  # one mirrored copy of the inputs, however many members read it
            mirrored = {input_name: Mirror(name=f"mirror_{input_name}")(tensor) for input_name, tensor in inputs.items()}
        maps.append(Mirror(name=f"unmirror_{role}")(network(mirrored)))
    return keras.Model(inputs, keras.layers.Average(name="probability")(maps), name=name)


def ensemble_members(model: keras.Model) -> dict[str, keras.Model]:
    """The member networks of an ensemble by role, in order (empty for a single network).

    Found by structure, so a reloaded ``.keras`` or a folded copy answers too: a
    member is a nested model with its own ``probability`` output (a stream has none).
    """
    members = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and any(inner.name == "probability" for inner in layer.layers):
            members[layer.name] = layer
    return members
