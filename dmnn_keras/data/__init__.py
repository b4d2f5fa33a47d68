"""Input pipelines, augmentation and category labels for DMNN training."""

from dmnn_keras.data.augment import CifarTrainAugment
from dmnn_keras.data.augment import ImageNetTrainAugment
from dmnn_keras.data.augment import imagenet_eval_preprocess
from dmnn_keras.data.augment import random_resized_crop
from dmnn_keras.data.categories import CIFAR10_CATEGORY_NAMES
from dmnn_keras.data.categories import CIFAR10_CLASS_NAMES
from dmnn_keras.data.categories import CIFAR10_CLASS_TO_CATEGORY
from dmnn_keras.data.categories import CIFAR100_CATEGORY_NAMES
from dmnn_keras.data.categories import cifar10_category
from dmnn_keras.data.categories import imagenet_category
from dmnn_keras.data.categories import imagenet_category_names
from dmnn_keras.data.categories import imagenet_class_to_category
from dmnn_keras.data.categories import load_imagenet_categories
from dmnn_keras.data.datasets import DATASETS
from dmnn_keras.data.datasets import DatasetInfo
from dmnn_keras.data.datasets import get_dataset_info
from dmnn_keras.data.datasets import load_dataset
