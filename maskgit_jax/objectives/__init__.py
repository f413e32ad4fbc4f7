"""Training objectives: what each stage is trained to do (algorithms).

:mod:`.mvtm` (masked visual token modeling: mask schedules, training masks,
the loss), :mod:`.mage_corruption`, :mod:`.token_critic`, the tokenizer's
:mod:`.losses`, and the continuous-token heads' :mod:`.gaussian_mixture`
(GIVT) and :mod:`.diffusion` (MAR).
"""
