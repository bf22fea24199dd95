"""Tic-tac-toe with an unbeatable minimax opponent."""
import random
from typing import List, Optional

LINES = [
    (0, 1, 2), (3, 4, 5), (6, 7, 8),
    (0, 3, 6), (1, 4, 7), (2, 5, 8),
    (0, 4, 8), (2, 4, 6),
]


class Board:
    def __init__(self, cells: Optional[List[str]] = None):
        self.cells = cells[:] if cells else [" "] * 9

    def __str__(self) -> str:
        rows = [" | ".join(self.cells[r * 3:r * 3 + 3]) for r in range(3)]
        return "\n---------\n".join(rows)

    def moves(self) -> List[int]:
        return [i for i, c in enumerate(self.cells) if c == " "]

    def play(self, index: int, mark: str) -> None:
        if not 0 <= index < 9:
            raise IndexError("cell out of range")
        if self.cells[index] != " ":
            raise ValueError(f"cell {index} is taken")
        self.cells[index] = mark

    def undo(self, index: int) -> None:
        self.cells[index] = " "

    def winner(self) -> Optional[str]:
        for a, b, c in LINES:
            if self.cells[a] != " " and self.cells[a] == self.cells[b] == self.cells[c]:
                return self.cells[a]
        return None

    def full(self) -> bool:
        return " " not in self.cells


def other(mark: str) -> str:
    return "O" if mark == "X" else "X"


def minimax(board: Board, to_move: str, me: str, depth: int = 0) -> int:
    win = board.winner()
    if win == me:
        return 10 - depth
    if win is not None:
        return depth - 10
    if board.full():
        return 0
    scores = []
    for move in board.moves():
        board.play(move, to_move)
        scores.append(minimax(board, other(to_move), me, depth + 1))
        board.undo(move)
    return max(scores) if to_move == me else min(scores)


def best_move(board: Board, me: str) -> int:
    moves = board.moves()
    if len(moves) == 9:
        return random.choice([0, 2, 4, 6, 8])
    best_score, best = -100, moves[0]
    for move in moves:
        board.play(move, me)
        score = minimax(board, other(me), me, 1)
        board.undo(move)
        if score > best_score:
            best_score, best = score, move
    return best


def ask_human(board: Board) -> int:
    while True:
        raw = input("your move (1-9): ").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= 9:
            print("please type a number between 1 and 9")
            continue
        idx = int(raw) - 1
        if idx not in board.moves():
            print("that square is taken")
            continue
        return idx


def play_game(human: str = "X") -> None:
    board = Board()
    turn = "X"
    while board.winner() is None and not board.full():
        print(board, end="\n\n")
        if turn == human:
            board.play(ask_human(board), turn)
        else:
            move = best_move(board, turn)
            print(f"computer plays {move + 1}")
            board.play(move, turn)
        turn = other(turn)
    print(board)
    win = board.winner()
    print("draw!" if win is None else f"{win} wins!")


if __name__ == "__main__":
    try:
        play_game(human=random.choice("XO"))
    except (KeyboardInterrupt, EOFError):
        print("\nbye")
