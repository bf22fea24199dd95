from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Tuple


@dataclass
class TrieNode:
    children: Dict[str, "TrieNode"] = field(default_factory=dict)
    terminal: bool = False
    weight: int = 0


class Autocomplete:
    """Prefix tree storing words with a popularity weight."""

    def __init__(self) -> None:
        self.root = TrieNode()
        self.size = 0

    def insert(self, word: str, weight: int = 1) -> None:
        node = self.root
        for ch in word.lower():
            node = node.children.setdefault(ch, TrieNode())
        if not node.terminal:
            self.size += 1
        node.terminal = True
        node.weight += weight

    def _find(self, prefix: str):
        node = self.root
        for ch in prefix.lower():
            node = node.children.get(ch)
            if node is None:
                return None
        return node

    def __contains__(self, word: str) -> bool:
        node = self._find(word)
        return bool(node and node.terminal)

    def _walk(self, node: TrieNode, prefix: str) -> Iterator[Tuple[str, int]]:
        stack = [(node, prefix)]
        while stack:
            current, text = stack.pop()
            if current.terminal:
                yield text, current.weight
            for ch in sorted(current.children, reverse=True):
                stack.append((current.children[ch], text + ch))

    def complete(self, prefix: str, limit: int = 5) -> List[str]:
        node = self._find(prefix)
        if node is None:
            return []
        best = heapq.nsmallest(limit, self._walk(node, prefix.lower()),
                               key=lambda item: (-item[1], item[0]))
        return [word for word, _ in best]

    def remove(self, word: str) -> bool:
        path = [self.root]
        for ch in word.lower():
            nxt = path[-1].children.get(ch)
            if nxt is None:
                return False
            path.append(nxt)
        if not path[-1].terminal:
            return False
        path[-1].terminal = False
        path[-1].weight = 0
        self.size -= 1
        # prune now-empty branches from the bottom up
        for ch, parent, child in zip(reversed(word.lower()), reversed(path[:-1]), reversed(path[1:])):
            if child.children or child.terminal:
                break
            del parent.children[ch]
        return True


if __name__ == "__main__":
    ac = Autocomplete()
    for w, n in [("python", 50), ("pytest", 20), ("pyramid", 5), ("pandas", 40),
                 ("pathlib", 12), ("pydantic", 25), ("pip", 60)]:
        ac.insert(w, n)
    print(ac.complete("py"))
    print(ac.complete("p", limit=3))
    ac.remove("pytest")
    print("pytest" in ac, ac.size, ac.complete("pyt"))
