"""Fetch one backbone's ImageNet weights into the Keras cache at image build time.

Used by the Dockerfile's `weights` stage, which has Keras but not snapfind: snapfind's backbone
names are Keras application class names in lower case, so Keras alone can resolve them, and a
code change does not fetch the weights again.

    python bake_weights.py efficientnetb7      # → $KERAS_HOME/models/efficientnetb7_notop.h5
"""

import sys

import keras


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: bake_weights.py BACKBONE", file=sys.stderr)
        return 2
    apps = {name.lower(): name for name in dir(keras.applications) if name[:1].isupper()}
    wanted = argv[0].strip().lower()
    if wanted not in apps:
        # EfficientNet-Lite's weights ship inside snapfind; a misspelt name is refused by
        # snapfind itself at start, with the list of backbones.
        print(f"BAKE_WEIGHTS={wanted}: not a keras.applications model, nothing to bake")
        return 0
    # The headless weights file does not depend on the input size: one download serves all.
    try:
        getattr(keras.applications, apps[wanted])(include_top=False, weights="imagenet")
    except Exception as error:  # Keras reports a failed download as a bare Exception
        print(
            f"BAKE_WEIGHTS={wanted}: could not fetch the ImageNet weights: {error}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
