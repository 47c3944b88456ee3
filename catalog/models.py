"""
The product catalog: categories and the items in them.

Constraints live in the database as well as in the serializers: a row written by any path
(bulk SQL, admin, a future importer) still cannot have a negative price or stock.
"""

import uuid

from django.core.validators import MinValueValidator
from django.db import models

from myproject.limits import TEXT_MAX_LENGTH


class Category(models.Model):
    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=TEXT_MAX_LENGTH)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=TEXT_MAX_LENGTH)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    stock = models.IntegerField(default=0, validators=[MinValueValidator(0)])
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="items")
    enable = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="item_price_gte_0"),
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="item_stock_gte_0"),
        ]
        indexes = [
            models.Index(fields=["category", "enable"]),
            # A category's page in the default order (sku): without it MariaDB walks the sku
            # index past every other category's items.
            models.Index(fields=["category", "sku"]),
            models.Index(fields=["enable", "price"]),
            models.Index(fields=["price"]),
            models.Index(fields=["stock"]),
            models.Index(fields=["name"]),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"
