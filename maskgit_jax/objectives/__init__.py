"""Training objectives: what each stage is trained to do (algorithms).

:mod:`.mvtm` (masked visual token modeling: mask schedules, training masks,
the loss), :mod:`.mage_corruption`, :mod:`.token_critic`, and the
tokenizer's :mod:`.losses`.
"""
