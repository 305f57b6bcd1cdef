"""Feature-distillation losses of the EAC recipe.

The student's global token is matched to the teacher's CLS token with a
cosine loss and its patch tokens to the teacher's patch tokens with cosine +
MSE. All losses are computed in float32.
"""
from torch import Tensor
from torch.nn import functional as F

__all__ = ['cosine_distill_loss', 'mse_distill_loss']


def cosine_distill_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """``mean(1 - cos(student, teacher))`` over every token.

    Args:
        student (Tensor): ``[..., D]`` student features (after projection).
        teacher (Tensor): ``[..., D]`` teacher features, same shape.

    Returns:
        Tensor: Scalar loss in ``[0, 2]``.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'cosine loss: student {tuple(student.shape)} and '
                         f'teacher {tuple(teacher.shape)} differ')
    cos = F.cosine_similarity(
        student.float(), teacher.float(), dim=-1, eps=1e-6)
    return (1.0 - cos).mean()


def mse_distill_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared error over every element.

    Args:
        student (Tensor): ``[..., D]`` student features (after projection).
        teacher (Tensor): ``[..., D]`` teacher features, same shape.

    Returns:
        Tensor: Scalar loss.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'MSE loss: student {tuple(student.shape)} and '
                         f'teacher {tuple(teacher.shape)} differ')
    return F.mse_loss(student.float(), teacher.float())
