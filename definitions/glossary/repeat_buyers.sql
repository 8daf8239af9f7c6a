select p.order_id, p.account_id, p.placed_at, min(later.placed_at) as next_purchase_at
from purchases p
join purchases later on later.account_id = p.account_id
    and later.placed_at > p.placed_at
    and later.placed_at <= p.placed_at + interval '720 hours'
group by p.order_id, p.account_id, p.placed_at
