select nr.order_item_id, nr.order_id, p.account_id, p.placed_at, nr.sku_id, sk.product_id,
       nr.quantity, nr.net_revenue, nr.cost_of_goods
from net_revenue nr
join purchases p on p.order_id = nr.order_id
join product.skus sk on sk.id = nr.sku_id
