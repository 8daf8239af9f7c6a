select oi.id as order_item_id, oi.order_id, oi.sku_id, oi.quantity,
       oi.unit_price * oi.quantity - oi.discount as net_revenue,
       sk.unit_cost * oi.quantity as cost_of_goods
from orders.order_items oi
join product.skus sk on sk.id = oi.sku_id
