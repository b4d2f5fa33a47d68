"""Gating methods: one `GatingMethod` object each, registered by name (`gating=`).

A new method is a module defining a `GatingMethod` subclass plus one line here.
"""

from dmnn_keras.methods.aig import AIG
from dmnn_keras.methods.base import (
    METHODS,
    GatingMethod,
    get_method,
    register_export_converters,
    register_method,
)
from dmnn_keras.methods.channel import ChannelGating
from dmnn_keras.methods.config import GatingConfig, with_gating_keywords
from dmnn_keras.methods.dmnn import DMNN
from dmnn_keras.methods.lcnet import LCNet

register_method(DMNN())
register_method(AIG())
register_method(ChannelGating())
register_method(LCNet())
