"""Built-in-style k-means (AWS "KMeansWebscale"): streaming centers, then a weighted local Lloyd reduction."""
from smlocal.algorithms.kmeans.job import train

__all__ = ["train"]
