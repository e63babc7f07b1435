"""Which language each post is written in: identification (``language.identify``), the step
that sets it on every post of a batch (``language.step``), and the settings that say how."""
