select p.account_id, count(*) as purchases
from purchases p
where p.placed_at >= :period_start and p.placed_at < :period_end
group by p.account_id
