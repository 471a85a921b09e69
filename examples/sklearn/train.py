"""A scikit-learn script-mode training script, as users write them for SageMaker's framework containers.

Reads every CSV in the `train` channel (label in the first column), fits a logistic regression with the
`C` and `max_iter` hyperparameters, and saves it to SM_MODEL_DIR.
"""
import argparse
import glob
import os

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max_iter", type=int, default=100)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args = parser.parse_args()

    files = sorted(glob.glob(os.path.join(args.train, "**", "*.csv"), recursive=True))
    if not files:
        raise SystemExit(f"no CSV files in {args.train}")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    y, X = data[:, 0], data[:, 1:]
    model = LogisticRegression(C=args.C, max_iter=args.max_iter).fit(X, y)
    print(f"training accuracy: {model.score(X, y):.4f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))


if __name__ == "__main__":
    main()
