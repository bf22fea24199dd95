import unittest
from decimal import Decimal
from unittest import mock


class InsufficientFunds(Exception):
    pass


class AccountFrozen(Exception):
    pass


class Account:
    def __init__(self, owner, balance=Decimal("0"), overdraft_limit=Decimal("0")):
        self.owner = owner
        self.balance = Decimal(balance)
        self.overdraft_limit = Decimal(overdraft_limit)
        self.frozen = False
        self.transactions = []

    def _check_active(self):
        if self.frozen:
            raise AccountFrozen(self.owner)

    def deposit(self, amount):
        self._check_active()
        amount = Decimal(amount)
        if amount <= 0:
            raise ValueError("deposit must be positive")
        self.balance += amount
        self.transactions.append(("deposit", amount))

    def withdraw(self, amount):
        self._check_active()
        amount = Decimal(amount)
        if amount <= 0:
            raise ValueError("withdrawal must be positive")
        if self.balance - amount < -self.overdraft_limit:
            raise InsufficientFunds(f"{self.owner}: balance {self.balance}, asked {amount}")
        self.balance -= amount
        self.transactions.append(("withdraw", amount))

    def transfer_to(self, other, amount, notifier=None):
        self.withdraw(amount)
        try:
            other.deposit(amount)
        except Exception:
            # roll back so money never disappears
            self.balance += Decimal(amount)
            self.transactions.pop()
            raise
        if notifier is not None:
            notifier.send(other.owner, f"received {amount} from {self.owner}")


class AccountTests(unittest.TestCase):
    def setUp(self):
        self.alice = Account("alice", "100.00")
        self.bob = Account("bob", "20.00", overdraft_limit="50")

    def test_deposit_increases_balance(self):
        self.alice.deposit("25.50")
        self.assertEqual(self.alice.balance, Decimal("125.50"))
        self.assertEqual(self.alice.transactions[-1], ("deposit", Decimal("25.50")))

    def test_deposit_rejects_non_positive(self):
        for bad in ("0", "-1"):
            with self.subTest(amount=bad):
                with self.assertRaises(ValueError):
                    self.alice.deposit(bad)

    def test_withdraw_within_overdraft(self):
        self.bob.withdraw("60")
        self.assertEqual(self.bob.balance, Decimal("-40"))

    def test_withdraw_beyond_overdraft_fails(self):
        with self.assertRaises(InsufficientFunds):
            self.bob.withdraw("70.01")
        self.assertEqual(self.bob.balance, Decimal("20.00"))

    def test_frozen_account_refuses_everything(self):
        self.alice.frozen = True
        with self.assertRaises(AccountFrozen):
            self.alice.deposit(1)
        with self.assertRaises(AccountFrozen):
            self.alice.withdraw(1)

    def test_transfer_moves_money_and_notifies(self):
        notifier = mock.Mock()
        self.alice.transfer_to(self.bob, "30", notifier=notifier)
        self.assertEqual(self.alice.balance, Decimal("70.00"))
        self.assertEqual(self.bob.balance, Decimal("50.00"))
        notifier.send.assert_called_once_with("bob", "received 30 from alice")

    def test_transfer_rolls_back_when_target_frozen(self):
        self.bob.frozen = True
        with self.assertRaises(AccountFrozen):
            self.alice.transfer_to(self.bob, "10")
        self.assertEqual(self.alice.balance, Decimal("100.00"))
        self.assertEqual(self.alice.transactions, [])

    @mock.patch.object(Account, "deposit", side_effect=RuntimeError("db down"))
    def test_transfer_rolls_back_on_unexpected_error(self, _deposit):
        with self.assertRaisesRegex(RuntimeError, "db down"):
            self.alice.transfer_to(self.bob, "10")
        self.assertEqual(self.alice.balance, Decimal("100.00"))


class PrecisionTests(unittest.TestCase):
    def test_many_small_deposits_do_not_drift(self):
        acct = Account("carol")
        for _ in range(1000):
            acct.deposit("0.10")
        self.assertEqual(acct.balance, Decimal("100.00"))

    @unittest.skipIf(Decimal("0.1") + Decimal("0.2") != Decimal("0.3"), "decimal broken")
    def test_decimal_sanity(self):
        self.assertTrue(True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
