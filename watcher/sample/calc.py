"""A very small calculator: the code the demo fleet builds."""


def add(left: float, right: float) -> float:
    return left + right


def mean(values: list[float]) -> float:
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)
