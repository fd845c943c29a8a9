"""Recovery policies: which action an attempt takes.

`decision.py` the contract (state, actions, decision, the safety mask, the static order);
`learned.py` the Q-learning policy; `reward.py` the one reward of simulation and online learning;
`artefact.py` the learned policy as a versioned file (`learned-policy.json`, trained by
`python -m bench fleet --write-policy PATH`).
"""
