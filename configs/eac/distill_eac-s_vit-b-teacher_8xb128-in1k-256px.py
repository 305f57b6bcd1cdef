# Distillation pretraining of EAC-S from the ViT-B teacher: as
# distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py (see there), with the
# 384-wide student mapped to the teacher's 768 channels by a linear
# projection (proj='auto'), which downstream configs ignore.
_base_ = './distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py'

model = dict(backbone=dict(arch='s'))
