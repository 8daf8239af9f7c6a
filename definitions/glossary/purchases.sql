select o.id as order_id, o.account_id, o.region_id, o.placed_at, o.status, o.shipping_fee,
       coalesce(lines.net_revenue, 0) as net_revenue,
       coalesce(lines.cost_of_goods, 0) as cost_of_goods,
       pr.promo_code_id, pr.discount_amount as promo_discount, d.campaign_id
from orders.orders o
left join (select nr.order_id, sum(nr.net_revenue) as net_revenue,
                  sum(nr.cost_of_goods) as cost_of_goods
           from net_revenue nr
           group by nr.order_id) lines on lines.order_id = o.id
left join marketing.promo_redemptions pr on pr.order_id = o.id
left join marketing.promo_codes pc on pc.id = pr.promo_code_id
left join marketing.discounts d on d.id = pc.discount_id
where o.status in ('paid', 'shipped', 'delivered', 'returned')
